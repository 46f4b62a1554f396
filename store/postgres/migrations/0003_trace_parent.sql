-- Version 3: the trace context of the Send that stored an event
-- (convoy.Event.TraceParent, a W3C traceparent), so that attempts made
-- later, by any process, can be linked to it. '' for none; a constant
-- default, so adding the column rewrites no row.
ALTER TABLE events
    ADD COLUMN trace_parent text NOT NULL DEFAULT '';
