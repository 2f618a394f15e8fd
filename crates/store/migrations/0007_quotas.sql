-- Per-account quota overrides (issue 13): the limits an operator set for an account through
-- the admin API or Nova os-quota-sets; a limit not set follows the configured defaults.
CREATE TABLE quotas (account TEXT PRIMARY KEY, data TEXT NOT NULL);
