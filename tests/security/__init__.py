"""One test per finding of the outside security probe (issue 15), each through the real server;
``docs/security.md`` maps every defence to its test here."""
