"""Packaging for jobs, a durable database-backed job framework."""

from setuptools import find_packages, setup

CELERY = ["celery>=5.4,<6", "kombu>=5.4,<6", "redis>=4.5,<9"]

setup(
    name="jobs",
    version="0.1.0",
    description=(
        "Durable, database-backed jobs for Zope-style Python applications: "
        "typed jobs created in the application's transaction, run by cron, "
        "worker or Celery runners, with OOPS error reports."
    ),
    python_requires=">=3.11",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"jobs.schema": ["*.sql"], "jobs.testing": ["*.sql"]},
    include_package_data=True,
    install_requires=[
        "zope.interface>=6.0,<9",
        "zope.component>=5.0,<8",
        "zope.dottedname>=6.0,<8",
        "storm>=1.0,<2",
        # The wheel: no libpq headers or compiler needed on a fresh machine.
        "psycopg2-binary>=2.9,<3",
        "transaction>=3.0,<6",
        "lazr.config>=3.0,<5",
        "lazr.enum>=2.0,<5",
        "lazr.delegates>=2.0,<5",
        "oops>=0.1,<0.3",
        "oops-datedir-repo>=0.1,<0.2",
        "testtools>=2.5,<3",
        "fixtures>=4.0,<5",
    ],
    extras_require={
        # Celery workers and dispatch (jobs.runners.celery): RabbitMQ
        # through kombu's amqp transport, or Redis through the client.
        "celery": CELERY,
        "test": ["pytest>=8,<10", "pytest-xdist>=3,<4"] + CELERY,
    },
    entry_points={
        "console_scripts": [
            "jobs=jobs.cli:main",
            "jobs-demo=jobs.demo.cli:main",
        ],
    },
)
