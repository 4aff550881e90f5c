-- Events from the HTTP API were recorded under topic number 5 before the availability feed's
-- topic took that number; they are topic 6 from now on, so that a replay still reads them as
-- API events.
UPDATE applied_events SET topic = 6 WHERE topic = 5;
