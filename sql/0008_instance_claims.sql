-- An instance is taken for gone once its last heartbeat, as this server's clock saw it, is older
-- than the bound every process honours (it stops sending when it cannot reach the database for
-- a shorter time), or at once when a process on its own machine sees that its process has
-- ended. `node` names that machine and process namespace, so that `pid` can be looked at there.
-- An adopter first claims the instance (`adopted_by`): a heartbeat and a claim update the same
-- row, so one of them wins, and a claimed instance can never say it is alive again.
ALTER TABLE instances ADD COLUMN node text NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN adopted_by integer;
