"""jobs: durable, database-backed jobs in the Zope/Launchpad tradition."""
