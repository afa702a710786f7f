"""The test suite: real redis-server, mosquitto and indiserver on free loopback ports."""
