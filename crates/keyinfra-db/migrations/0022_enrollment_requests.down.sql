DROP TABLE enrollment_requests;
