"""One module per page; UI only. Rules, SQL and I/O live in crm/."""
