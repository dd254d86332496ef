"""What `make demo` and the tests run besides the platform: an embedded SFTP server."""
