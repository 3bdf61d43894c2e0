"""Operations: settings, the embedded broker, topics, the command line."""
