"""``python -m jobs``: the `jobs` command."""


from jobs.cli import console

console()
