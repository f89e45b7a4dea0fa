-- Initial schema of the Rust Security Platform. Portable between SQLite and PostgreSQL.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         VARCHAR(320) NOT NULL UNIQUE,
    display_name  VARCHAR(200) NOT NULL,
    password_hash VARCHAR(255),
    mfa_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    name        VARCHAR(64) NOT NULL UNIQUE,
    description VARCHAR(500) NOT NULL DEFAULT ''
);

CREATE TABLE user_roles (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id    INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    granted_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE oauth_clients (
    client_id     VARCHAR(64) PRIMARY KEY,
    name          VARCHAR(200) NOT NULL,
    redirect_uris TEXT NOT NULL,
    confidential  BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE sessions (
    id          VARCHAR(64) PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   VARCHAR(64) REFERENCES oauth_clients(client_id),
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at  TIMESTAMP NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    occurred   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    actor      VARCHAR(320) NOT NULL,
    action     VARCHAR(64) NOT NULL,
    resource   VARCHAR(500) NOT NULL,
    decision   VARCHAR(8) NOT NULL CHECK (decision IN ('allow', 'deny')),
    detail     TEXT
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, occurred);

INSERT INTO roles (id, name, description) VALUES
    (1, 'admin', 'Full control of the platform'),
    (2, 'operator', 'Deploys and operates services'),
    (3, 'viewer', 'Read-only access');

CREATE ROLE reporting LOGIN PASSWORD 'hunter2-long-random-xyz';
