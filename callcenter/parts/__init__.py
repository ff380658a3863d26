"""Fees and parts on the on-site record (SA-OS-004): price list, parts catalogue, stock per
warehouse and per engineer's van, issuing parts to an order, and the customer's sign-off."""
