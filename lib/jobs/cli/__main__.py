"""``python -m jobs.cli``: the `jobs` command."""


from jobs.cli.main import console

console()
