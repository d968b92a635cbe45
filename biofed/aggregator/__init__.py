"""The aggregator: harvest, verification pipeline, catalogue builder, Datasette."""
