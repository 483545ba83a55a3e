"""costguard: spend only what each tenant and user is allowed to."""
