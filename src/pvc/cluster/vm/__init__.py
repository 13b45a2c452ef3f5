"""VMs: lookups and the v1 API shape, define/modify/rename, metadata and tags, state and
placement requests, the list served from memory, hot-plug and disk-lock tasks."""
