-- The control plane's records move to one document table (confab-control
-- owns their shapes); app secrets are now stored encrypted. Pre-release
-- data in the old tables is not carried over.
DROP TABLE app_keys;
DROP TABLE apps;
DROP TABLE tenants;

CREATE TABLE control_records (
    kind      TEXT NOT NULL,
    id        TEXT NOT NULL,
    tenant_id TEXT,
    doc       TEXT NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX control_records_by_tenant ON control_records (kind, tenant_id, id);

-- One row: the config version, moved by every control write.
CREATE TABLE control_version (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL
);
INSERT INTO control_version (one, version) VALUES (1, 0);
