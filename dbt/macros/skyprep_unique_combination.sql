{#- A grain key of several columns is unique: no two rows share all of `columns`
    (not_null on each column is a test of its own). -#}
{% test skyprep_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
