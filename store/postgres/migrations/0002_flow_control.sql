-- Version 2: an endpoint's flow control settings. ordered is a column of
-- its own, so that Claim can read it beside the deliveries it joins;
-- rate_limit is the RateLimit as JSON, NULL for none.
ALTER TABLE endpoints
    ADD COLUMN ordered    boolean NOT NULL DEFAULT false,
    ADD COLUMN rate_limit jsonb;
