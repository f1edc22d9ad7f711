DROP TABLE certificate_authorities;
DROP TABLE private_keys;
DROP TYPE key_algorithm;
