"""Each operator's open conversations kept as a counter on their state row

Routing's fast path read each candidate's open chats by counting them: a third of a
decision. Triggers on conversations keep operator_states.open_chats in step with every
change of a chat's assignee or status, in the statement that makes it, whoever writes
it (the ORM, bulk SQL, a cascade from a deleted channel, contact or user).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08 03:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

# The counts from the conversations themselves: the backfill, and the same statement as
# `hub routing recount` (hub.routing.counts.recount) writes.
_BACKFILL = [
    """INSERT INTO operator_states (user_id, presence, capacity, open_chats, changed_at)
       SELECT assignee_id, 'offline', 5, count(*), CURRENT_TIMESTAMP FROM conversations
       WHERE status = 'open' AND assignee_id IS NOT NULL GROUP BY assignee_id
       ON CONFLICT (user_id) DO UPDATE SET open_chats = excluded.open_chats""",
]

# A decrement never creates a row (the user may be going: ON DELETE SET NULL); an
# increment creates the row state_of() would (offline, capacity 5). Two operators'
# rows are touched in user_id order, so that two opposite transfers cannot deadlock.
_POSTGRES = [
    """CREATE FUNCTION conversations_open_chats() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was integer;
    now_is integer;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'open' THEN was := OLD.assignee_id; END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'open' THEN now_is := NEW.assignee_id; END IF;
    IF was IS NOT DISTINCT FROM now_is THEN RETURN NULL; END IF;
    IF was IS NOT NULL AND (now_is IS NULL OR was < now_is) THEN
        UPDATE operator_states SET open_chats = open_chats - 1 WHERE user_id = was;
        was := NULL;
    END IF;
    IF now_is IS NOT NULL THEN
        INSERT INTO operator_states (user_id, presence, capacity, open_chats, changed_at)
        VALUES (now_is, 'offline', 5, 1, now())
        ON CONFLICT (user_id) DO UPDATE SET open_chats = operator_states.open_chats + 1;
    END IF;
    IF was IS NOT NULL THEN
        UPDATE operator_states SET open_chats = open_chats - 1 WHERE user_id = was;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER conversations_open_chats_insert AFTER INSERT ON conversations FOR EACH ROW
       WHEN (NEW.status = 'open' AND NEW.assignee_id IS NOT NULL) EXECUTE FUNCTION conversations_open_chats()""",
    """CREATE TRIGGER conversations_open_chats_update AFTER UPDATE OF assignee_id, status ON conversations
       FOR EACH ROW WHEN (OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.status IS DISTINCT FROM NEW.status)
       EXECUTE FUNCTION conversations_open_chats()""",
    """CREATE TRIGGER conversations_open_chats_delete AFTER DELETE ON conversations FOR EACH ROW
       WHEN (OLD.status = 'open' AND OLD.assignee_id IS NOT NULL) EXECUTE FUNCTION conversations_open_chats()""",
]
_POSTGRES_DROP = [
    "DROP TRIGGER conversations_open_chats_delete ON conversations",
    "DROP TRIGGER conversations_open_chats_update ON conversations",
    "DROP TRIGGER conversations_open_chats_insert ON conversations",
    "DROP FUNCTION conversations_open_chats()",
]

_SQLITE_INCREMENT = """INSERT INTO operator_states (user_id, presence, capacity, open_chats, changed_at)
        SELECT NEW.assignee_id, 'offline', 5, 1, CURRENT_TIMESTAMP
        WHERE NEW.status = 'open' AND NEW.assignee_id IS NOT NULL
        ON CONFLICT (user_id) DO UPDATE SET open_chats = open_chats + 1;"""
_SQLITE_DECREMENT = """UPDATE operator_states SET open_chats = open_chats - 1
        WHERE OLD.status = 'open' AND user_id = OLD.assignee_id;"""
_SQLITE = [
    f"""CREATE TRIGGER conversations_open_chats_insert AFTER INSERT ON conversations
    WHEN NEW.status = 'open' AND NEW.assignee_id IS NOT NULL BEGIN {_SQLITE_INCREMENT} END""",
    f"""CREATE TRIGGER conversations_open_chats_update AFTER UPDATE OF assignee_id, status ON conversations
    WHEN OLD.assignee_id IS NOT NEW.assignee_id OR OLD.status IS NOT NEW.status
    BEGIN {_SQLITE_DECREMENT} {_SQLITE_INCREMENT} END""",
    f"""CREATE TRIGGER conversations_open_chats_delete AFTER DELETE ON conversations
    WHEN OLD.status = 'open' AND OLD.assignee_id IS NOT NULL BEGIN {_SQLITE_DECREMENT} END""",
]
_SQLITE_DROP = [f"DROP TRIGGER conversations_open_chats_{event}" for event in ("delete", "update", "insert")]


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


# A plain ADD / DROP COLUMN, not a batch: on SQLite a batch copies and drops the table.
def upgrade() -> None:
    op.add_column('operator_states', sa.Column('open_chats', sa.Integer(), nullable=False, server_default='0'))
    for statement in _BACKFILL + (_POSTGRES if _postgres() else _SQLITE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _POSTGRES_DROP if _postgres() else _SQLITE_DROP:
        op.execute(statement)
    op.drop_column('operator_states', 'open_chats')
