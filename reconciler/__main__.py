"""`python -m reconciler` and the `reconciler` command: the command line, started without the cyclic
garbage collector (`reconciler._startup`)."""

from reconciler import _startup


def main() -> None:
    _startup.pause()
    from reconciler.cli import main as command_line  # noqa: PLC0415 -- after the pause: the imports are start-up

    command_line()


if __name__ == "__main__":
    main()
