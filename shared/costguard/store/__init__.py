"""The single DynamoDB table every capability shares: its definition (`schema`), its keys
(`keys`), item writes (`writes`) and the one client edge (`dynamo`).

The ledger, alerts, API keys, forecasts and the schedules are peers on this store; none of
them reaches the table through another.
"""
