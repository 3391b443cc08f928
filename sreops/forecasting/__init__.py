"""Forecasting: Prophet fits of each service's scaling metric, the scaling policy, the replay backtest."""
