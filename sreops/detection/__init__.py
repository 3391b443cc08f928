"""Anomaly detection: minute features → scores (0–100, explained) → incidents in `alerts`.

The flow, one module per step:
- `settings`: the knobs of a detector version (their hash names the version) and the alarm policy.
- `novelty`: each value paired with its recent level, and its distance to the nearest earlier pair.
- `calibration`: raw novelty → tail surprise → evidence → a 0–100 score and a severity.
- `models`: what a training run keeps per series (reference pairs, value range, calibration sample),
  the robust cold-start baseline, and the PyOD detectors measured against it.
- `streaming`: the detector over one series as a stream; the score of a point never sees a later one.
- `explain`: why a point or a service-minute scored high (observed value versus the typical band).
- `incidents`: hysteresis and N-of-M over service-minute scores, written to the `alerts` outbox.
- `events`: deploy and maintenance windows (config and the `events` table).
- `store`, `scoring`, `versions`: the warehouse side (model registry, hourly scoring, replayable versions).
"""
