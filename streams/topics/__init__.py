"""The topic catalogue and the topics' creation on a broker."""
