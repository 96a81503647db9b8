from tests.workflows.notify_fixtures import chat_robot, smtp_inbox, smtp_server  # noqa: F401  (fixtures)
