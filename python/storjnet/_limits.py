"""The user API's limits (docs/api.md, "Parameter types"); the native module checks the same numbers."""
MAX_KEY = 4096  # bytes of a DHT key
MAX_TOPIC = 256  # bytes of a pubsub topic
MAX_VALUE_SIZE = 64 * 1024  # bytes of a DHT value's JSON text
MAX_MESSAGE_JSON = 64 * 1024  # bytes of a message's JSON text
MAX_EVENT_JSON = 8 * 1024  # bytes of a pubsub event's JSON text
DEFAULT_NETWORK_ID = 0x53544A31  # "STJ1"
