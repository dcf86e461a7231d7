-- +goose Up
-- Dead letters that an admin chose to discard, kept so that no visit
-- disappears without a record of who dropped it and why.
CREATE TABLE discarded_visits (
    visit_id          uuid NOT NULL,
    payload           jsonb NOT NULL,
    dead_letter_reason text NOT NULL,
    reason            text NOT NULL,
    discarded_at      timestamptz NOT NULL DEFAULT now(),
    discarded_by      text NOT NULL DEFAULT current_user
);

CREATE INDEX discarded_visits_visit_id ON discarded_visits (visit_id);

-- +goose Down
DROP TABLE discarded_visits;
