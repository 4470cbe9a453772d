"""CoNLL-U and CoNLL readers/writers on verbatim excerpts of the real files; bad input -> file:line errors."""
import gzip

import pytest

from rnnkit.data import DataError
from rnnkit.data.conll import (
    check_tags,
    format_sentences,
    read_conll,
    read_conllu,
    read_sentences,
    read_tokens,
    write_sentences,
)

UD_EXCERPT = (  # UD English-EWT, verbatim: a dev sentence (multiword token 2-3), a train one (empty node 8.1)
    "# sent_id = weblog-blogspot.com_tacitusproject_20040712123425_ENG_20040712_123425-0037\n"
    "# newpar id = weblog-blogspot.com_tacitusproject_20040712123425_ENG_20040712_123425-p0003\n"
    "# text = Now that's a rambling response.\n"
    "1\tNow\tnow\tADV\tRB\tPronType=Dem\t6\tadvmod\t6:advmod\t_\n"
    "2-3\tthat's\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tthat\tthat\tPRON\tDT\tNumber=Sing|PronType=Dem\t6\tnsubj\t6:nsubj\t_\n"
    "3\t's\tbe\tAUX\tVBZ\tMood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin\t6\tcop\t6:cop\t_\n"
    "4\ta\ta\tDET\tDT\tDefinite=Ind|PronType=Art\t6\tdet\t6:det\t_\n"
    "5\trambling\trambling\tADJ\tJJ\tDegree=Pos\t6\tamod\t6:amod\t_\n"
    "6\tresponse\tresponse\tNOUN\tNN\tNumber=Sing\t0\troot\t0:root\tSpaceAfter=No\n"
    "7\t.\t.\tPUNCT\t.\t_\t6\tpunct\t6:punct\t_\n"
    "\n"
    "# sent_id = weblog-blogspot.com_healingiraq_20040409053012_ENG_20040409_053012-0022\n"
    "# text = Over 300 Iraqis are reported dead and 500 wounded in Fallujah alone.\n"
    "1\tOver\tover\tADV\tRB\t_\t2\tadvmod\t2:advmod\t_\n"
    "2\t300\t300\tNUM\tCD\tNumForm=Digit|NumType=Card\t3\tnummod\t3:nummod\t_\n"
    "3\tIraqis\tIraqi\tPROPN\tNNPS\tNumber=Plur\t5\tnsubj:pass\t5:nsubj:pass|6:nsubj:xsubj|8:nsubj:pass\t_\n"
    "4\tare\tbe\tAUX\tVBP\tMood=Ind|Number=Plur|Person=3|Tense=Pres|VerbForm=Fin\t5\taux:pass\t5:aux:pass\t_\n"
    "5\treported\treport\tVERB\tVBN\tTense=Past|VerbForm=Part|Voice=Pass\t0\troot\t0:root\t_\n"
    "6\tdead\tdead\tADJ\tJJ\tDegree=Pos\t5\txcomp\t5:xcomp\t_\n"
    "7\tand\tand\tCCONJ\tCC\t_\t8\tcc\t8:cc|8.1:cc\t_\n"
    "8\t500\t500\tNUM\tCD\tNumForm=Digit|NumType=Card\t5\tconj\t5:conj:and|8.1:nsubj:pass|9:nsubj:xsubj\t_\n"
    "8.1\treported\treport\tVERB\tVBN\tTense=Past|VerbForm=Part|Voice=Pass\t_\t_\t5:conj:and\tCopyOf=5\n"
    "9\twounded\twounded\tADJ\tJJ\tDegree=Pos\t8\torphan\t8.1:xcomp\t_\n"
    "10\tin\tin\tADP\tIN\t_\t11\tcase\t11:case\t_\n"
    "11\tFallujah\tFallujah\tPROPN\tNNP\tNumber=Sing\t5\tobl\t5:obl:in\t_\n"
    "12\talone\talone\tADV\tRB\t_\t11\tadvmod\t11:advmod\tSpaceAfter=No\n"
    "13\t.\t.\tPUNCT\t.\t_\t5\tpunct\t5:punct\t_\n"
    "\n"
)

WNUT_EXCERPT = (  # WNUT-17 train, verbatim: TOKEN<TAB>TAG, sentences separated by "\t" lines or empty lines
    "@paulwalk\tO\n" "It\tO\n" "'s\tO\n" "the\tO\n" "view\tO\n" "from\tO\n" "where\tO\n" "I\tO\n" "'m\tO\n"
    "living\tO\n" "for\tO\n" "two\tO\n" "weeks\tO\n" ".\tO\n" "Empire\tB-location\n" "State\tI-location\n"
    "Building\tI-location\n" "=\tO\n" "ESB\tB-location\n" ".\tO\n" "Pretty\tO\n" "bad\tO\n" "storm\tO\n"
    "here\tO\n" "last\tO\n" "evening\tO\n" ".\tO\n"
    "\t\n"
    "From\tO\n" "Green\tO\n" "Newsfeed\tO\n" ":\tO\n" "AHFA\tB-group\n" "extends\tO\n" "deadline\tO\n"
    "\n"
)

CONLL2003 = (  # CoNLL-2003 layout: -DOCSTART-, space-separated columns (token POS chunk NER), IOBES tags here
    "-DOCSTART- -X- -X- O\n"
    "\n"
    "EU NNP B-NP S-ORG\n"
    "rejects VBZ B-VP O\n"
    "German JJ B-NP S-MISC\n"
    "call NN I-NP O\n"
    "\n"
    "Peter NNP B-NP B-PER\n"
    "Blackburn NNP I-NP E-PER\n"
    "   \n"
)


def write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_conllu_words_and_tags_skip_comments_ranges_and_empty_nodes(tmp_path):
    path = write(tmp_path, UD_EXCERPT, "x.conllu")
    first, second = read_conllu(path)
    assert first.words == ["Now", "that", "'s", "a", "rambling", "response", "."]
    assert first.tags == ["ADV", "PRON", "AUX", "DET", "ADJ", "NOUN", "PUNCT"]
    assert read_conllu(path, column="xpos")[0].tags == ["RB", "DT", "VBZ", "DT", "JJ", "NN", "."]
    assert second.words[7:10] == ["500", "wounded", "in"]  # 8.1 "reported" is not a word
    assert len(second.words) == 13 and "reported" not in second.words[6:]
    assert first.line == 1 and second.line == 13


def test_conllu_gzip_and_round_trip_is_byte_identical(tmp_path):
    path = tmp_path / "x.conllu.gz"
    path.write_bytes(gzip.compress(UD_EXCERPT.encode("utf-8")))
    sentences = read_conllu(path)
    assert format_sentences(sentences, [s.tags for s in sentences], "conllu") == UD_EXCERPT


def test_conllu_writer_replaces_only_the_tag_column(tmp_path):
    sentences = read_conllu(write(tmp_path, UD_EXCERPT, "x.conllu"), column="xpos")
    new = [[f"X{k}" for k in range(len(s))] for s in sentences]
    out = write(tmp_path, "placeholder", "out.conllu")
    write_sentences(out, sentences, new, "conllu", column="xpos")
    again = read_conllu(out, column="xpos")
    assert [s.tags for s in again] == new
    assert [s.tags for s in read_conllu(out, column="upos")] == [s.tags for s in read_conllu(
        write(tmp_path, UD_EXCERPT, "y.conllu"))]
    before, after = UD_EXCERPT.splitlines(), out.read_text().splitlines()
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a.split("\t")[:4] + a.split("\t")[5:] == b.split("\t")[:4] + b.split("\t")[5:]


@pytest.mark.parametrize("bad,found", [("1\tNow\tnow\tADV\tRB", 5), ("1 Now now ADV RB _ 6 advmod 6:advmod _", 1)])
def test_conllu_wrong_column_count(tmp_path, bad, found):
    lines = UD_EXCERPT.splitlines()
    lines[3] = bad
    path = write(tmp_path, "\n".join(lines) + "\n", "bad.conllu")
    with pytest.raises(DataError, match=rf"^{path}:4: expected 10 tab-separated columns, found {found}$"):
        read_conllu(path)


def test_conllu_missing_tag_and_bad_id(tmp_path):
    path = write(tmp_path, UD_EXCERPT.replace("\tNOUN\tNN\t", "\t_\tNN\t"), "x.conllu")
    with pytest.raises(DataError, match=rf"{path}:10: expected a UPOS tag in column 4, found '_'"):
        read_conllu(path)
    assert read_conllu(path, require_tags=False)[0].tags is None  # prediction input may be untagged
    path = write(tmp_path, UD_EXCERPT.replace("4\ta\ta", "four\ta\ta"), "y.conllu")
    with pytest.raises(DataError, match=rf"{path}:8: expected an integer word ID .* found 'four'"):
        read_conllu(path)


def test_wnut_conll_with_tab_only_separators(tmp_path):
    sentences = read_conll(write(tmp_path, WNUT_EXCERPT))
    assert [len(s) for s in sentences] == [27, 7]
    assert sentences[0].tags[14:20] == ["B-location", "I-location", "I-location", "O", "B-location", "O"]
    assert sentences[1].words[4] == "AHFA" and sentences[1].line == 29
    assert format_sentences(sentences, [s.tags for s in sentences], "conll").replace("\n\n", "\n\t\n", 1) \
        == WNUT_EXCERPT


def test_conll2003_docstart_spaces_and_iobes(tmp_path):
    path = write(tmp_path, CONLL2003)
    sentences = read_conll(path, scheme="iobes")
    assert [s.words for s in sentences] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert sentences[0].tags == ["S-ORG", "O", "S-MISC", "O"] and sentences[1].line == 8
    text = format_sentences(sentences, [["O"] * 4, ["B-PER", "E-PER"]], "conll")
    assert text.splitlines()[0] == "EU NNP B-NP O"  # the other columns and the separator are kept
    with pytest.raises(DataError, match=rf"{path}:3: expected a BIO tag .* found 'S-ORG'"):
        read_conll(path, scheme="bio")


@pytest.mark.parametrize("tags,scheme,line,message", [
    (["O", "I-PER"], "bio", 2, "expected 'I-PER' to continue an entity .* after 'O'"),
    (["B-PER", "I-LOC"], "bio", 2, "expected 'I-LOC' to continue an entity"),
    (["PER", "O"], "bio", 1, r"expected a BIO tag \(O, B-TYPE, I-TYPE\), found 'PER'"),
    (["B-PER", "O"], "iobes", 2, "expected I-PER or E-PER after 'B-PER' .IOBES., found 'O'"),
    (["O", "B-PER"], "iobes", 2, "expected I-PER or E-PER after 'B-PER' .IOBES., found the end of the sentence"),
    (["S-PER", "E-PER"], "iobes", 2, "expected 'E-PER' to continue an entity"),
])
def test_scheme_errors_name_the_line(tags, scheme, line, message):
    with pytest.raises(DataError, match=rf"^f.conll:{9 + line}: {message}"):
        check_tags(tags, scheme, "f.conll", 10)


def test_valid_schemes_pass():
    check_tags(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"], "bio")
    check_tags(["B-PER", "I-PER", "E-PER", "S-LOC", "O", "B-ORG", "E-ORG"], "iobes")
    check_tags(["O", "I-PER", "NN"], "none")


def test_conll_needs_two_columns_to_train(tmp_path):
    path = write(tmp_path, "Peter\tB-PER\nBlackburn\n")
    with pytest.raises(DataError, match=rf"{path}:2: expected a token and a tag \(at least 2 columns\), found 1"):
        read_conll(path)
    sentences = read_conll(path, require_tags=False)
    assert format_sentences(sentences, [["B-PER", "I-PER"]], "conll") == "Peter\tB-PER\nBlackburn\tI-PER\n\n"


def test_raw_text_and_outputs(tmp_path):
    path = write(tmp_path, "The cat sat .\n\n  Dogs   bark\n")
    sentences = read_sentences(path, "text")
    assert [s.words for s in sentences] == [["The", "cat", "sat", "."], ["Dogs", "bark"]]
    assert [s.line for s in sentences] == [1, 3] and read_tokens(path)[1].words == ["Dogs", "bark"]
    tags = [["DET", "NOUN", "VERB", "PUNCT"], ["NOUN", "VERB"]]
    assert format_sentences(sentences, tags, "text") == "The/DET cat/NOUN sat/VERB ./PUNCT\nDogs/NOUN bark/VERB\n"
    assert format_sentences(sentences, tags, "text", one_per_line=True).split("\n\n")[1] == "Dogs\tNOUN\nbark\tVERB"


def test_empty_inputs(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_conll(write(tmp_path, "\n\t\n"))
    with pytest.raises(DataError, match="expected CoNLL-U sentences"):
        read_conllu(write(tmp_path, "# only a comment\n", "c.conllu"))
