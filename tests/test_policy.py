"""The support policy's one decision per message, on constructed parses and candidates."""

from __future__ import annotations

import pytest

from crowddesk.bot.dialogue.policy import (
    ConversationContext,
    DecisionKind,
    HandoffReason,
    RetrieverCalibration,
    SupportPolicy,
    Thresholds,
)
from crowddesk.bot.project.config import FrustrationSettings, HandoffSettings, PolicySettings
from crowddesk.knowledge_base.types import Candidate
from crowddesk.nlu.frustration import FrustrationDetector
from crowddesk.nlu.payload import parse_payload
from crowddesk.nlu.types import Entity, IntentScore, Parse

FRESH = ConversationContext(failed_turns=0, last_answer_was_automated=False)


def make_policy(**overrides: object) -> SupportPolicy:
    settings = PolicySettings(**overrides)  # type: ignore[arg-type]
    return SupportPolicy(
        settings,
        Thresholds(answer=0.6, clarify_floor=0.2),
        # Retriever score -> probability: 0.5 -> 0.1, 0.9 -> 0.95.
        RetrieverCalibration((0.5, 0.9), (0.1, 0.95)),
        dialogue_intents=["greet", "track_card_delivery"],
        entry_intents={"faq/card_arrival": "faq/card_arrival", "faq/lost_card": "faq/lost_card"},
        entry_titles={"faq/card_arrival": "Where is my card?", "faq/lost_card": "I lost my card"},
    )


def parse(*ranking: tuple[str, float]) -> Parse:
    scores = [IntentScore(name, conf) for name, conf in ranking]
    return Parse("text", scores[0], scores)


def candidate(entry_id: str, score: float) -> Candidate:
    return Candidate(entry_id, entry_id, score, score, 0.0, entry_id)


def test_confident_faq_intent_answers_from_the_linked_kb_entry() -> None:
    decision = make_policy().decide(parse(("faq/card_arrival", 0.9), ("greet", 0.05)), [], FRESH)
    assert decision.kind is DecisionKind.ANSWER_FROM_KB
    assert decision.option is not None and decision.option.key == "faq/card_arrival"


def test_confident_rule_intent_responds() -> None:
    decision = make_policy().decide(parse(("greet", 0.97)), [], FRESH)
    assert decision.kind is DecisionKind.RESPOND and decision.option.key == "greet"


def test_retriever_alone_can_answer_an_entry_without_an_intent() -> None:
    decision = make_policy().decide(
        parse(("greet", 0.3), ("faq/lost_card", 0.2)), [candidate("csv:reset-pin", 0.9)], FRESH
    )
    assert decision.kind is DecisionKind.ANSWER_FROM_KB
    assert decision.option.key == "csv:reset-pin"
    assert decision.confidence == 0.95


def test_out_of_scope_and_requests_for_a_person_hand_off() -> None:
    policy = make_policy()
    oos = policy.decide(parse(("out_of_scope", 0.8)), [], FRESH)
    assert oos.kind is DecisionKind.HAND_OFF and oos.handoff_reason is HandoffReason.OUT_OF_SCOPE
    human = policy.decide(parse(("human_handoff", 0.4), ("greet", 0.3)), [], FRESH)
    assert human.handoff_reason is HandoffReason.CUSTOMER_REQUEST


def test_low_confidence_hands_off() -> None:
    decision = make_policy().decide(parse(("faq/card_arrival", 0.15), ("greet", 0.05)), [], FRESH)
    assert decision.kind is DecisionKind.HAND_OFF
    assert decision.handoff_reason is HandoffReason.LOW_CONFIDENCE


# The retriever backs both FAQ entries (0.6 -> P 0.31), as it does a genuine near-miss.
BACKED = [candidate("faq/card_arrival", 0.6), candidate("faq/lost_card", 0.6)]


def test_close_candidates_get_a_clarifying_question_with_buttons() -> None:
    decision = make_policy().decide(
        parse(("faq/card_arrival", 0.35), ("faq/lost_card", 0.30), ("greet", 0.15)), BACKED, FRESH
    )
    assert decision.kind is DecisionKind.CLARIFY
    assert [o.key for o in decision.options] == ["faq/card_arrival", "faq/lost_card"]
    assert decision.options[0].payload == "/faq/card_arrival"


def test_one_plausible_candidate_gets_a_did_you_mean_question() -> None:
    decision = make_policy().decide(parse(("greet", 0.1)), [candidate("community:e-1043", 0.7)], FRESH)
    assert decision.kind is DecisionKind.CLARIFY
    assert [o.key for o in decision.options] == ["community:e-1043"]


def test_distant_runners_up_are_not_offered() -> None:
    decision = make_policy().decide(parse(("faq/card_arrival", 0.40), ("faq/lost_card", 0.05)), BACKED, FRESH)
    assert [o.key for o in decision.options] == ["faq/card_arrival"]


def test_second_failed_turn_in_a_row_hands_off() -> None:
    close = parse(("faq/card_arrival", 0.35), ("faq/lost_card", 0.30))
    failed_once = ConversationContext(failed_turns=1, last_answer_was_automated=False)
    decision = make_policy().decide(close, BACKED, failed_once)
    assert decision.kind is DecisionKind.HAND_OFF
    assert decision.handoff_reason is HandoffReason.FAILED_TURNS


def test_no_after_an_automated_answer_is_a_failed_turn() -> None:
    after_answer = ConversationContext(failed_turns=0, last_answer_was_automated=True)
    decision = make_policy().decide(parse(("deny", 0.9)), [], after_answer)
    assert decision.kind is DecisionKind.REPHRASE and decision.counts_as_failure


def test_button_payload_for_a_kb_entry_answers_it() -> None:
    policy = make_policy()
    option = policy.options(parse(("faq/lost_card", 0.1)), [candidate("csv:reset-pin", 0.6)])
    kb_button = next(o for o in option if o.key == "csv:reset-pin").payload
    assert kb_button == '/kb{"entry_id": "csv:reset-pin"}'
    payload = parse_payload(kb_button)
    assert payload is not None
    pressed = Parse(
        kb_button,
        IntentScore(payload.intent, 1.0),
        [IntentScore(payload.intent, 1.0)],
        [Entity("entry_id", payload.entities["entry_id"], 0, 0, "payload")],
    )
    decision = policy.decide(pressed, [], FRESH, from_button=True)
    assert decision.kind is DecisionKind.ANSWER_FROM_KB and decision.option.key == "csv:reset-pin"


def test_always_human_intents_hand_off_however_confident() -> None:
    policy = make_policy(always_human_intents=["report_fraud"])
    decision = policy.decide(parse(("report_fraud", 0.99), ("greet", 0.01)), [], FRESH)
    assert decision.kind is DecisionKind.HAND_OFF
    assert decision.handoff_reason is HandoffReason.ALWAYS_HUMAN
    # Asking for a person is still a customer request, and other intents are unaffected.
    assert policy.decide(parse(("human_handoff", 0.9)), [], FRESH).handoff_reason is HandoffReason.CUSTOMER_REQUEST
    assert policy.decide(parse(("greet", 0.97)), [], FRESH).kind is DecisionKind.RESPOND


def frustrated(text: str, *earlier: str) -> ConversationContext:
    score = FrustrationDetector().score(text, earlier)
    return ConversationContext(failed_turns=0, last_answer_was_automated=False, frustration=score)


def test_a_frustrated_customer_is_handed_off_even_when_the_bot_knows_the_answer() -> None:
    confident = parse(("faq/card_arrival", 0.95))
    context = frustrated("WHERE IS MY CARD???", "where is my card")
    decision = make_policy().decide(confident, [], context)
    assert decision.kind is DecisionKind.HAND_OFF
    assert decision.handoff_reason is HandoffReason.FRUSTRATION
    assert "repeated_message" in decision.handoff_detail and "all_caps" in decision.handoff_detail


def test_frustration_threshold_and_switch_come_from_config() -> None:
    confident = parse(("faq/card_arrival", 0.95))
    annoyed = frustrated("this is ridiculous and useless")  # two negative phrases: 2 points
    assert make_policy().decide(confident, [], annoyed).kind is DecisionKind.HAND_OFF
    lenient = HandoffSettings(frustration=FrustrationSettings(threshold=3))
    assert make_policy(handoff=lenient).decide(confident, [], annoyed).kind is DecisionKind.ANSWER_FROM_KB
    off = HandoffSettings(frustration=FrustrationSettings(enabled=False))
    assert make_policy(handoff=off).decide(confident, [], annoyed).kind is DecisionKind.ANSWER_FROM_KB


def test_an_entry_both_voters_back_is_answered_where_either_alone_would_only_ask() -> None:
    policy = make_policy()
    # Classifier 0.45 and retriever 0.3125 (score 0.6) for the same entry: 1 - 0.55 * 0.6875.
    both = policy.decide(parse(("faq/card_arrival", 0.45), ("greet", 0.1)), [candidate("faq/card_arrival", 0.6)], FRESH)
    assert both.kind is DecisionKind.ANSWER_FROM_KB and both.confidence == pytest.approx(0.621875)
    classifier_alone = policy.decide(parse(("faq/card_arrival", 0.45), ("greet", 0.1)), [], FRESH)
    assert classifier_alone.kind is DecisionKind.CLARIFY
    # Voters pointing at different entries (an unseen topic pulled to two neighbours) add nothing.
    apart = policy.decide(parse(("faq/card_arrival", 0.45), ("greet", 0.1)), [candidate("faq/lost_card", 0.6)], FRESH)
    assert apart.kind is DecisionKind.CLARIFY and apart.confidence == pytest.approx(0.45)


def test_an_explicit_request_for_a_person_beats_a_confident_answer() -> None:
    context = ConversationContext(0, False, person_request="get me a human")
    decision = make_policy().decide(parse(("faq/card_arrival", 0.95)), [], context)
    assert decision.kind is DecisionKind.HAND_OFF
    assert decision.handoff_reason is HandoffReason.CUSTOMER_REQUEST
    assert decision.handoff_detail == 'asked: "get me a human"'


def test_an_entry_the_classifier_never_saw_outranks_its_confident_neighbour() -> None:
    # "my PIN is blocked": the classifier knows only faq/lost_card (0.9); an entry approved from
    # hand-offs after training matches at retriever score 0.9 (P 0.95). The classifier's 0.9 holds
    # only if the answer is one of its intents: 0.9 * (1 - 0.95) = 0.045.
    policy = make_policy()
    decision = policy.decide(parse(("faq/lost_card", 0.9), ("greet", 0.05)), [candidate("handoff:T-7", 0.9)], FRESH)
    assert decision.kind is DecisionKind.ANSWER_FROM_KB and decision.option.key == "handoff:T-7"
    ranked = policy.options(parse(("faq/lost_card", 0.9), ("greet", 0.05)), [candidate("handoff:T-7", 0.9)])
    assert [(o.key, round(o.confidence, 3)) for o in ranked[:2]] == [("handoff:T-7", 0.95), ("faq/lost_card", 0.045)]
    # A weak match outside the classifier's intents barely moves a confident answer.
    weak = policy.decide(parse(("faq/lost_card", 0.9), ("greet", 0.05)), [candidate("handoff:T-7", 0.5)], FRESH)
    assert weak.kind is DecisionKind.ANSWER_FROM_KB and weak.option.key == "faq/lost_card"
    assert weak.confidence == pytest.approx(0.9 * (1 - 0.1))
