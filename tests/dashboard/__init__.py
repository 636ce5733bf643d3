"""Tests of the dashboard served at / (controller/http/static)."""
