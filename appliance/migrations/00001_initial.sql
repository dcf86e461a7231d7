-- +goose Up
-- Master data. The appliance publishes these tables to the cloud; the
-- admin commands write them.
CREATE TABLE users (
    id                  text PRIMARY KEY,
    username            text NOT NULL UNIQUE,
    name                text NOT NULL,
    password_hash       text NOT NULL,
    disabled            boolean NOT NULL DEFAULT false,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    city       text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    category   text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per visit. visit_id is the phone's idempotency key: the primary
-- key is what makes every redelivery and retry a no-op.
CREATE TABLE visits (
    visit_id         uuid PRIMARY KEY,
    user_id          text NOT NULL REFERENCES users (id),
    client_id        text NOT NULL REFERENCES clients (id),
    visited_at       timestamptz NOT NULL,
    client_notes     text NOT NULL DEFAULT '',
    additional_notes text NOT NULL DEFAULT '',
    accepted_at      timestamptz NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    stream_sequence  bigint NOT NULL,
    content_hash     text NOT NULL
);

CREATE INDEX visits_user_visited_at ON visits (user_id, visited_at);
CREATE INDEX visits_client_visited_at ON visits (client_id, visited_at);

-- Proposed devices of a visit, in the order the salesman chose them; sold
-- marks those also sold, which are always a subset of the proposed.
CREATE TABLE visit_devices (
    visit_id  uuid NOT NULL REFERENCES visits (visit_id) ON DELETE CASCADE,
    device_id bigint NOT NULL REFERENCES devices (id),
    position  int NOT NULL,
    sold      boolean NOT NULL,
    PRIMARY KEY (visit_id, device_id)
);

-- +goose Down
DROP TABLE visit_devices;
DROP TABLE visits;
DROP TABLE devices;
DROP TABLE clients;
DROP TABLE users;
