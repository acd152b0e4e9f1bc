"""The seed's pipeline, one module per step: plain functions over a SQLAlchemy
session, no Flask. Each state change and its event commit together."""
