"""The shipped examples import and publish, and the templates they name fit."""
import pytest

from hub.automations import examples, store
from hub.platform.db import utcnow
from hub.models import Template
from tests.support.whatsapp import WABA_ID


def test_the_five_examples_are_shipped():
    assert examples.names() == ["abandoned_reminder", "feedback_poll", "lead_qualification", "off_hours_callback",
                                "order_status"]
    with pytest.raises(LookupError):
        examples.load("../../config")


@pytest.mark.parametrize("name", examples.names())
def test_each_example_imports_and_publishes(runtime, name):
    with runtime.db.scope() as session:
        session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                             category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}, order {{2}}."}]))
        session.add(Template(waba_id=WABA_ID, name="feedback_poll", language="en", status="APPROVED",
                             category="UTILITY", components=[{"type": "BODY", "text": "How did we do, {{1}}?"}]))
        session.flush()
        scenario = store.import_document(session, examples.load(name), now=utcnow(), publish_now=True)
        assert scenario.published_version_id is not None
        assert scenario.trigger_type == examples.load(name)["scenario"]["trigger"]["type"]


def test_an_example_whose_template_takes_other_variables_is_refused(runtime):
    with runtime.db.scope() as session:
        session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                             category="UTILITY", components=[{"type": "BODY", "text": "Order {{1}} shipped."}]))
        session.flush()
        with pytest.raises(store.ScenarioRefused) as refused:
            store.import_document(session, examples.load("order_status"), now=utcnow(), publish_now=True)
    assert refused.value.problems == ["steps[0] (shipped).template.variables: order_update (en) takes 1 "
                                      "variable(s), the step gives 2"]
