"""The automl service: FastAPI routes → services → repositories (SQLAlchemy), plus the controller
that runs queued jobs through the engine."""
