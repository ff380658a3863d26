"""SLA clocks: the time standards of the service process (``rules``, pure), the scheduler that
raises and clears alerts (``scheduler``) and the alert list (``http``)."""
