-- Read diffusion (docs/protocol.md §4.15, "Fan-out"): whether the sender of
-- a read-fan-out message got their inbox entry when it was stored. Until
-- this migration every such message did; from now on the store gives the
-- entry at append only to the message's listed recipients, and a sender
-- who is not one of them (a member posting to a read-diffused group) gets
-- it from their pull, numbered in seq order with the rest of the group's
-- messages. A pull skips a message its user sent only when this is set.
ALTER TABLE messages ADD COLUMN sender_entry BOOLEAN NOT NULL DEFAULT TRUE;
