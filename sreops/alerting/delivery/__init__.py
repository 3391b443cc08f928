"""The outbox delivery loop: post every alert revision not yet delivered, exactly once, at Slack's pace.

One pass (`run.Deliverer.run`, or `run.deliver_pending`) repeats three short steps, and no
warehouse connection is open while Slack is called:

1. plan: read a snapshot of the outbox in one short read (`record.read_snapshot`), decide from it
   with no I/O (`plan`) what to withhold, dry-run or post, then write, in one short transaction,
   the withheld and dry-run revisions and an *intent* row for each Slack call about to be made;
2. call Slack (`execute`), at most one message per channel per `pacing_seconds`;
3. record (`record`, in the next transaction) each call's outcome, `slack_ts`, attempts and the
   last error; `alerts` is written through `alerting.outbox`.

A 429 pauses every call for its `Retry-After`; other failures back off exponentially; none drops
an alert. A call whose outcome is unknown (an HTTP 500, a timeout, a crash between posting and
recording) leaves its intent behind, and the next attempt first looks for the message in the
channel (each post carries its step key in Slack message metadata) instead of posting it again.

One pass at a time holds the outbox, through an OS lock on a file beside the warehouse rather
than a lease with an expiry: the kernel releases it the moment its holder dies, so after a crash
the next tick resumes at once (a time lease had to outlast the longest pass, 70 s).
"""
