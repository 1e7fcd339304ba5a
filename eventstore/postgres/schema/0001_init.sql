-- Wardline event store, schema version 1.
--
-- store_meta holds the single row that identifies the log (epoch) and the
-- position counter (head). Appenders lock this row first in their
-- transaction, which serialises them across every node sharing the
-- database: positions are therefore gap-free and visible in commit order.
CREATE TABLE store_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     text    NOT NULL,
    head      bigint  NOT NULL DEFAULT 0
);

-- streams holds each stream's current version and its retention. A row
-- with version 0 is a stream that has metadata but no events yet.
CREATE TABLE streams (
    stream     text   PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 0,
    max_age_us bigint NOT NULL DEFAULT 0,
    max_count  bigint NOT NULL DEFAULT 0
);

-- events is the global log. data and metadata are opaque bytes; NULL keeps
-- a nil slice distinct from an empty one.
CREATE TABLE events (
    position       bigint      PRIMARY KEY,
    stream         text        NOT NULL,
    version        bigint      NOT NULL,
    id             text        NOT NULL UNIQUE,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           bytea,
    metadata       bytea,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream, version)
);
