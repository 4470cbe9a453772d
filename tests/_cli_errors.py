"""The check every CLI test of bad input shares: one line on stderr, no traceback, exit code 2."""
from rnnkit.cli import main


def one_error_line(capsys, argv, *fragments) -> str:
    """Run `rnnkit ARGV`; assert it exits with 2 after exactly one stderr line containing every fragment."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
