"""Every CLI option has a help line and every command an example in its --help."""
import argparse

from groundseg.cli import build_parser


def _walk(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _walk(sub, path + (name,))


def test_every_option_has_help_and_every_command_an_example():
    missing, no_example = [], []
    for path, sub in _walk(build_parser()):
        if not sub.epilog or "example" not in sub.epilog:
            no_example.append(" ".join(path))
        for a in sub._actions:
            if not a.help and a.dest != "help" and not isinstance(a, argparse._SubParsersAction):
                missing.append(f"{' '.join(path)} {a.option_strings or a.dest}")
    assert not missing, f"options without help: {missing}"
    assert not no_example, f"commands without an example: {no_example}"
