DROP TABLE aggregator_lease;
