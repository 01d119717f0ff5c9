"""Abuse limits: token buckets per credential on photo uploads and claim creation, shared by
every replica (in the database, or in Redis where one is configured), and a cap on the photos
one customer stores per day."""
