"""The top layer: what crosses plans, metrics and the backlog.

Lifecycle guards that read metrics or the backlog, the portfolio, and (next) the go/no-go
page, the decision record, the deployment gate and rollback execution. It may import every
app below it; nothing imports it.
"""
