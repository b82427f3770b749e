"""ConvAssist's Mac agent: read chat.db and the AddressBook, pair with the server, sync every 5 minutes."""

__version__ = "0.1.0"
