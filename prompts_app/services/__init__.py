"""Use-cases that touch the database and the Maxim client; views call these."""
