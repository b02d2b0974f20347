//! Filling the spool (issue 21, item 7; issue 14, item 5 for the endpoint).
