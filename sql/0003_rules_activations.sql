-- Every time a rules version went live, not only the first: the audit trail of GET /rules.
CREATE TABLE rules_activations (
    id bigserial PRIMARY KEY,
    hash text NOT NULL,
    went_live timestamptz NOT NULL DEFAULT now(),
    "by" text NOT NULL DEFAULT ''
);
INSERT INTO rules_activations (hash, went_live, "by")
    SELECT hash, went_live, "by" FROM rules_versions ORDER BY went_live, hash;
