"""The contracts: API request and response models, events, topic names. No I/O."""
