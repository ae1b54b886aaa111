"""Errors that carry one plain sentence for the person using the app or the CLI."""


class CrmError(Exception):
    """A problem the user can act on; str(error) is the sentence to show."""


class ConfigError(CrmError):
    """The configuration (environment, secrets, data folder) is unusable."""


class DatabaseUnavailable(CrmError):
    """The database cannot be reached or opened."""


class SchemaNotReady(CrmError):
    """The database exists but has not been migrated to the current schema."""


class PermissionDenied(CrmError):
    """The signed-in user's role does not allow this action."""


class SignInRefused(CrmError):
    """A sign-in (single sign-on) that matches no active user; the message says why."""


class ValidationError(CrmError):
    """Input that breaks a rule; the message names the field and the rule."""


class NotFound(CrmError):
    """The thing asked for does not exist."""


class InputUnusable(CrmError):
    """The input as a whole cannot be used (CLI exit code 2); nothing was written."""
