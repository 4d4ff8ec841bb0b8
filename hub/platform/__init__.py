"""Platform: settings, the database, the runtime that wires them, migrations, users, logs, metrics."""
