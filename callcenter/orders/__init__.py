"""Work orders: intake (SA-CR-001), work order (SA-WO-002), appointment (SA-AP-003), their
numbers, state machine and HTTP interface."""
